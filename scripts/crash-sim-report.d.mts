/** The command that regenerates docs/reliability/crash-sim.md. */
export declare const COMMAND: string;
/** Replaces the section `name` of docs/reliability/crash-sim.md; only when RELIABILITY_REPORT=1 (returns whether it wrote). */
export declare const writeReportSection: (name: string, lines: ReadonlyArray<string>) => boolean;
