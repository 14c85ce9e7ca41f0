/** freehold's version (kept equal to package.json's by test/architecture.test.ts). */
export const VERSION = "0.1.0";
