#!/usr/bin/env node
/**
 * The `meetrec` command.
 */
import { Command, Option } from "commander";
import { writeFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { configWarnings, importNextcloudFile, importedYaml, loadConfig, parseConfig } from "../config/index.js";
import { MeetrecError } from "../util/errors.js";
import { openviduRecorder } from "./openvidu.js";
import { record } from "./record.js";
import { recover } from "./recover.js";
import { serve } from "./serve.js";
import { runWorker } from "./worker.js";

const program = new Command()
  .name("meetrec")
  .description("Self-hosted recording server for web video meetings")
  .version("0.1.0")
  .showHelpAfterError();

program.command("serve")
  .description("run the server: embedded (API, store, dispatch and recording in one process) or, with --role api, the stateless API of a cluster")
  .option("-c, --config <file>", "YAML config file (default: $MEETREC_CONFIG, else built-in defaults)")
  .addOption(new Option("--role <role>", "embedded: everything here; api: cluster API (needs cluster.redisUrl, cluster.postgresUrl, segments.s3)").choices(["embedded", "api"]).default("embedded"))
  .action(async (o: { config?: string; role: "embedded" | "api" }) => serve(o));

program.command("worker")
  .description("run a cluster recording worker: takes jobs from Redis (BullMQ), stores in PostgreSQL, media in segments.s3")
  .option("-c, --config <file>", "YAML config file")
  .action(async (o: { config?: string }) => runWorker(o));

program.command("record")
  .description("record one meeting on this machine, without a server (SIGUSR1 pauses capturing, SIGUSR2 captures again)")
  .argument("<url>", "meeting URL")
  .option("-c, --config <file>", "YAML config file")
  .option("--join <steps.json>", "JSON file with the join steps")
  .option("--duration <seconds>", "stop after this many seconds (default: until Ctrl-C or the configured limit)")
  .option("--out <file>", "where to write the file (default: ./recording.mp4 or ./recording.m4a)")
  .option("--browser <name>", "chromium or firefox", "chromium")
  .option("--audio-only", "record sound only (M4A)")
  .option("--width <px>", "video width")
  .option("--height <px>", "video height")
  .option("--fps <n>", "frames per second")
  .option("--start-when <when>", "media: begin when remote media plays (at most startTimeoutSeconds after joining); joined: right after joining (default: the config's startWhen, media)")
  .option("--json", "print a JSON summary on stdout")
  .action(async (url: string, o) => { process.exitCode = await record(url, o); });

program.command("recover")
  .description("finalize (or --resume) the recordings a killed meetrec left in its data directory, and media the store does not know; refuses while serve uses it")
  .option("-c, --config <file>", "YAML config file")
  .option("--resume", "rejoin the recordings that were live and run until they end, instead of finalizing them now")
  .option("--json", "print what was done as JSON")
  .action(async (o: { config?: string; resume?: boolean; json?: boolean }) => { process.exitCode = await recover(o); });

program.command("openvidu-recorder")
  .description("the entrypoint of an image replacing OpenVidu 2's openvidu/openvidu-recording: records what openvidu-server passes in its environment (COMPOSED, COMPOSED_QUICK_START) and leaves the files it reads in openvidu.recordingsDir")
  .option("-c, --config <file>", "YAML config file (default: $MEETREC_CONFIG; MEETREC_* settings also from {openvidu.recordingsDir}/.env)")
  .addOption(new Option("--start-recording", "quick start: start the recording described by this process's environment in the running container").conflicts("stopRecording"))
  .option("--stop-recording", "quick start: stop the recording under way; returns once its files are written")
  // An explicit exit: openvidu-server waits for the container to end before it reads the files.
  .action(async (o: { config?: string; startRecording?: boolean; stopRecording?: boolean }) => { process.exit(await openviduRecorder(o)); });

const config = program.command("config").description("configuration tools");
config.command("check")
  .description("validate the configuration (file + MEETREC_* environment) and print a summary without secrets")
  .option("-c, --config <file>", "YAML config file")
  .action((o: { config?: string }) => {
    let imported: string[] | undefined;
    const cfg = loadConfig(o.config, process.env, (_keys, warnings) => { imported = warnings; });
    const backends = Object.entries(cfg.backends).map(([n, b]) => `${n} (origins: ${b.allowedOrigins.length ? b.allowedOrigins.join(", ") : "any"}${b.talk ? `; Talk ${b.talk.url}, container ${b.talk.container}` : ""})`);
    const warnings = imported ?? configWarnings(cfg);
    process.stdout.write([
      "configuration is valid",
      `  listen:      ${cfg.listen}`,
      `  dataDir:     ${cfg.dataDir}`,
      `  concurrency: ${cfg.concurrency}`,
      `  video:       ${cfg.video.width}x${cfg.video.height}@${cfg.video.fps} ${cfg.video.bitrateKbps} kbit/s`,
      `  backends:    ${backends.length ? backends.join("; ") : "none (serve creates \"default\" with a generated key)"}`,
      ...warnings.map((w) => `warning: ${w}`),
      "",
    ].join("\n"));
  });

config.command("import-nextcloud")
  .description("convert a Nextcloud Talk recording server's server.conf into meetrec.yaml (keys that cannot be carried over are listed)")
  .argument("<server.conf>", "the recording server's configuration file")
  .option("-o, --out <file>", "write the YAML here (default: standard output)")
  .action((file: string, o: { out?: string }) => {
    const result = importNextcloudFile(file);
    const yaml = importedYaml(result, file);
    parseConfig(parseYaml(yaml)); // what we write must be valid
    if (o.out) writeFileSync(o.out, yaml, { mode: 0o600 });
    else process.stdout.write(yaml);
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    for (const n of result.notCarried) process.stderr.write(`not carried over: ${n}\n`);
    if (o.out) process.stderr.write(`wrote ${o.out} (${Object.keys((result.config.backends as object) ?? {}).length} Talk backend(s)); check it with: meetrec config check -c ${o.out}\n`);
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof MeetrecError) {
    process.stderr.write(`meetrec: ${err.code}: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`meetrec: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
