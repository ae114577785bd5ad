/**
 * Errors are values with stable codes. Every layer throws `CxrError`; the CLI and the
 * HTTP API each map a code to an exit status or HTTP status in exactly one place
 * (`exitCodeFor`, `httpStatusFor`), so a code means the same thing everywhere.
 */
export type ErrorCode =
  // DICOM ingestion
  | 'E_NOT_DICOM'
  | 'E_TRUNCATED'
  | 'E_MALFORMED'
  | 'E_UNSUPPORTED_SYNTAX'
  | 'E_DECODE_FAILED'
  | 'E_NO_PIXEL_DATA'
  | 'E_NOT_GRAYSCALE'
  | 'E_MULTI_FRAME'
  | 'E_BAD_PIXEL_FORMAT'
  | 'E_TOO_LARGE'
  // images and datasets
  | 'E_BAD_IMAGE'
  | 'E_BAD_DATASET'
  | 'E_BAD_ARGUMENT'
  | 'E_NOT_FOUND'
  // models and inference
  | 'E_MODEL_MISSING'
  | 'E_MODEL_INVALID'
  | 'E_BACKEND'
  | 'E_TRAINING_DIVERGED'
  /** a long job stopped by the user (SIGINT); exit status 130 like a shell's */
  | 'E_INTERRUPTED'
  // service
  | 'E_UNAUTHENTICATED'
  | 'E_FORBIDDEN'
  | 'E_CSRF'
  | 'E_UNSUPPORTED_MEDIA_TYPE'
  /** none of the media types the request's Accept allows can be produced (HTTP 406) */
  | 'E_NOT_ACCEPTABLE'
  | 'E_PAYLOAD_TOO_LARGE'
  | 'E_BAD_REQUEST'
  | 'E_CONFLICT'
  | 'E_QUEUE_FULL'
  | 'E_RATE_LIMITED'
  | 'E_STORAGE_FULL'
  | 'E_UNAVAILABLE'
  /** a results destination (PACS) could not be reached or refused what was sent */
  | 'E_DESTINATION'
  | 'E_CONFIG'
  | 'E_INTERNAL';

export class CxrError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CxrError';
    this.code = code;
    this.details = details;
  }
}

export function isCxrError(e: unknown): e is CxrError {
  return e instanceof CxrError;
}

/** Input problems are the caller's fault (2); everything else is ours (1). */
export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'E_INTERNAL':
    case 'E_BACKEND':
    case 'E_TRAINING_DIVERGED':
    case 'E_STORAGE_FULL':
    case 'E_UNAVAILABLE':
    case 'E_DESTINATION':
      return 1;
    case 'E_INTERRUPTED':
      return 130;
    case 'E_CONFIG':
    case 'E_MODEL_MISSING':
    case 'E_MODEL_INVALID':
      return 3;
    default:
      return 2;
  }
}

export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'E_UNAUTHENTICATED':
      return 401;
    case 'E_FORBIDDEN':
    case 'E_CSRF':
      return 403;
    case 'E_NOT_FOUND':
      return 404;
    case 'E_CONFLICT':
      return 409;
    case 'E_PAYLOAD_TOO_LARGE':
    case 'E_TOO_LARGE':
      return 413;
    case 'E_UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'E_NOT_ACCEPTABLE':
      return 406;
    case 'E_BAD_REQUEST':
    case 'E_BAD_ARGUMENT':
      return 400;
    case 'E_QUEUE_FULL':
    case 'E_UNAVAILABLE':
      return 503;
    case 'E_RATE_LIMITED':
      return 429;
    case 'E_DESTINATION':
      // 502 Bad Gateway: the server upstream of us (the PACS) failed
      return 502;
    case 'E_STORAGE_FULL':
      // 507 Insufficient Storage (RFC 4918): the request was fine, the server has no room now
      return 507;
    case 'E_INTERNAL':
    case 'E_BACKEND':
    case 'E_TRAINING_DIVERGED':
    case 'E_CONFIG':
    case 'E_MODEL_MISSING':
    case 'E_MODEL_INVALID':
      return 500;
    default:
      // Everything a client sent that we could read but not accept (malformed DICOM, bad
      // dataset rows, colour images) is unprocessable content.
      return 422;
  }
}
