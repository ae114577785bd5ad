// Types of test-bundle.mjs for the TypeScript test helpers that call it.
export declare const BUILD_DIR: string;
export declare function compiledPath(file: string): string;
export declare function sourcePath(file: string): string;
export declare function removeOwnBuild(): void;
export declare function bundle(entries: string[]): Promise<string[]>;
export declare function compileScript(entry: string, dir: string): Promise<string>;
