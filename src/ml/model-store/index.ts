/**
 * The model store: one home for model versions on disk. It owns the manifest format
 * (manifest.ts), version resolution and the ACTIVE file (versions.ts), writing versions
 * atomically and deriving new ones (stage.ts), telling leftover staging folders from live ones
 * and removing them (staging.ts), and portable provenance (provenance.ts).
 * It imports no tfjs, so the serving side (src/inference) can use it.
 */
export * from './manifest.js';
export * from './provenance.js';
export * from './stage.js';
export * from './staging.js';
export * from './versions.js';
