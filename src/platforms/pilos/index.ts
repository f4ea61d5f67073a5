/**
 * PILOS (BigBlueButton front-end): its recordings arrive through its spool directory, as the
 * tar its `import:recordings` command takes (`shared/protocols/pilos-bbb-import.md`). meetrec
 * delivers them with the spool target; this part is the package the hosts install for
 * `delivery.spool.package: pilos`.
 */
export { pilosSpoolPackage, pilosRecordId, metadataXml, type PilosMetadata } from "./package.js";
