import { InitialSchema1764320000000 } from './1764320000000-InitialSchema.js';
import { LoginAttempts1796152985517 } from './1796152985517-LoginAttempts.js';

/** Every migration, oldest first. The data source runs them; nothing else creates schema. */
export const migrations = [InitialSchema1764320000000, LoginAttempts1796152985517];
