import type { Command } from "commander";
import { registerAdopt } from "./adopt.js";
import { registerAudit } from "./audit.js";
import { registerCompletion } from "./completion.js";
import { registerConfig } from "./config.js";
import { registerCp } from "./cp.js";
import { registerCreate } from "./create.js";
import { registerDb } from "./db.js";
import { registerDoctor } from "./doctor.js";
import { registerEngine } from "./engine.js";
import { registerEval } from "./eval.js";
import { registerExplain } from "./explain.js";
import { registerImport } from "./import.js";
import { registerKeys } from "./keys.js";
import { registerList } from "./list.js";
import { registerLock } from "./lock.js";
import { registerMcp } from "./mcp.js";
import { registerPs } from "./ps.js";
import { registerPull } from "./pull.js";
import { registerRm } from "./rm.js";
import { registerRun } from "./run.js";
import { registerServe } from "./serve.js";
import { registerShow } from "./show.js";
import { registerStop } from "./stop.js";
import { registerSynth } from "./synth.js";
import { registerUsage } from "./usage.js";
import { registerVerify } from "./verify.js";

/** A command registers itself on the program. One file per command in this folder. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  registerServe,
  registerRun,
  registerPs,
  registerStop,
  registerImport,
  registerPull,
  registerAdopt,
  registerLock,
  registerVerify,
  registerCreate,
  registerList,
  registerShow,
  registerCp,
  registerRm,
  registerSynth,
  registerKeys,
  registerUsage,
  registerAudit,
  registerDb,
  registerConfig,
  registerExplain,
  registerDoctor,
  registerEval,
  registerCompletion,
  registerMcp,
  registerEngine,
];
