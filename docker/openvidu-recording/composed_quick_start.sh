#!/bin/bash
# OpenVidu 2's quick-start hook, as openvidu-server calls it in the recording container's working
# directory (shared/protocols/openvidu-recording.md §5): "./composed_quick_start.sh
# --start-recording" with the recording's variables exported, and "./composed_quick_start.sh
# --stop-recording". The container's own process (meetrec openvidu-recorder, the image's
# entrypoint) keeps the browser open and does the work; this hands the exec to it.
set -euo pipefail
case "${1:-}" in
  --start-recording|--stop-recording) exec meetrec openvidu-recorder "$1" ;;
  *) echo "usage: $0 --start-recording|--stop-recording (the container's entrypoint is meetrec openvidu-recorder)" >&2; exit 2 ;;
esac
