import type { Command } from 'commander';

/** Each subcommand lives in its own module and adds itself to the program. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [];
