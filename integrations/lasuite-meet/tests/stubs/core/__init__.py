"""Stand-in for Meet's ``core`` package (suitenumerique/meet ``src/backend/core``), reduced to what the worker class imports."""
