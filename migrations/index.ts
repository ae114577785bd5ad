import { InitialSchema1764320000000 } from './1764320000000-InitialSchema.js';
import { LoginAttempts1796152985517 } from './1796152985517-LoginAttempts.js';
import { ClientAeTitles1796153333948 } from './1796153333948-ClientAeTitles.js';
import { StudiesAsUnit1796155128792 } from './1796155128792-StudiesAsUnit.js';
import { WebSessionsAndReviewLabels1796153366700 } from './1796153366700-WebSessionsAndReviewLabels.js';
import { JobsAndObjectStore1796160000000 } from './1796160000000-JobsAndObjectStore.js';
import { ResultsOutbox1796170000000 } from './1796170000000-ResultsOutbox.js';
import { OperatorTokens1796171000000 } from './1796171000000-OperatorTokens.js';
import { ShadowModels1796172000000 } from './1796172000000-ShadowModels.js';
import { WorklistSummary1796174000000 } from './1796174000000-WorklistSummary.js';
import { DriftBaselines1796175000000 } from './1796175000000-DriftBaselines.js';

/** Every migration, oldest first. The data source runs them; nothing else creates schema. */
export const migrations = [
  InitialSchema1764320000000,
  LoginAttempts1796152985517,
  ClientAeTitles1796153333948,
  WebSessionsAndReviewLabels1796153366700,
  StudiesAsUnit1796155128792,
  JobsAndObjectStore1796160000000,
  ResultsOutbox1796170000000,
  OperatorTokens1796171000000,
  ShadowModels1796172000000,
  WorklistSummary1796174000000,
  DriftBaselines1796175000000,
];
