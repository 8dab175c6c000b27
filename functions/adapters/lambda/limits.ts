/**
 * What a Lambda Function URL can carry. A synchronous invocation takes at most 6,291,456 bytes of
 * event, and the body arrives base64-encoded (4 bytes per 3), next to headers and the request
 * context: leaving 64 KiB for those, a raw body of at most 4,669,440 bytes fits. Larger requests
 * never reach the function (the Function URL itself answers 413).
 */
export const FUNCTION_URL_EVENT_LIMIT = 6_291_456;
const ENVELOPE_ALLOWANCE = 64 * 1024;
export const FUNCTION_URL_BODY_LIMIT = Math.floor(((FUNCTION_URL_EVENT_LIMIT - ENVELOPE_ALLOWANCE) * 3) / 4);

/** Of a 15-minute function: verifying a direct upload pauses after this, leaving time to copy and link. */
export const LAMBDA_VERIFY_SLICE_SECONDS = 600;
