import type { Command } from "commander";
import { registerSynth } from "./synth.js";

/** A command registers itself on the program. One file per command in this folder. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [registerSynth];
