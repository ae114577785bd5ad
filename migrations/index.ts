import { InitialSchema1764320000000 } from './1764320000000-InitialSchema.js';
import { JobsAndObjectStore1764619200000 } from './1764619200000-JobsAndObjectStore.js';

/** Every migration, oldest first. The data source runs them; nothing else creates schema. */
export const migrations = [InitialSchema1764320000000, JobsAndObjectStore1764619200000];
