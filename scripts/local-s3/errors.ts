/**
 * Every S3 error code this server answers, once, with its HTTP status and S3's message
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList). Handlers and
 * the store throw S3Error; server.ts is the one place that turns it into a response.
 */

const CODES = {
  AccessDenied: [403, 'Access Denied'],
  AuthorizationQueryParametersError: [400, 'X-Amz-Expires must be less than a week (in seconds) that is 7 days or 604800 seconds'],
  BadDigest: [400, 'The Content-MD5 or checksum value that you specified did not match what the server received.'],
  BucketAlreadyOwnedByYou: [409, 'Your previous request to create the named bucket succeeded and you already own it.'],
  BucketNotEmpty: [409, 'The bucket you tried to delete is not empty'],
  EntityTooLarge: [400, 'Your proposed upload exceeds the maximum allowed size'],
  EntityTooSmall: [400, 'Your proposed upload is smaller than the minimum allowed object size.'],
  IncompleteBody: [400, 'You did not provide the number of bytes specified by the Content-Length HTTP header'],
  InternalError: [500, 'We encountered an internal error. Please try again.'],
  InvalidAccessKeyId: [403, 'The AWS Access Key Id you provided does not exist in our records.'],
  InvalidArgument: [400, 'Invalid Argument'],
  InvalidBucketName: [400, 'The specified bucket is not valid.'],
  InvalidDigest: [400, 'The Content-MD5 you specified was invalid.'],
  InvalidPart: [
    400,
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
  ],
  InvalidPartOrder: [400, 'The list of parts was not in ascending order. Parts must be ordered by part number.'],
  InvalidRange: [416, 'The requested range is not satisfiable'],
  InvalidRequest: [400, 'Invalid Request'],
  InvalidURI: [400, "Couldn't parse the specified URI."],
  KeyTooLongError: [400, 'Your key is too long'],
  MalformedXML: [400, 'The XML you provided was not well-formed or did not validate against our published schema'],
  MetadataTooLarge: [400, 'Your metadata headers exceed the maximum allowed metadata size'],
  MethodNotAllowed: [405, 'The specified method is not allowed against this resource.'],
  MissingContentLength: [411, 'You must provide the Content-Length HTTP header.'],
  NoSuchBucket: [404, 'The specified bucket does not exist'],
  NoSuchKey: [404, 'The specified key does not exist.'],
  NoSuchUpload: [404, 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.'],
  NotImplemented: [501, 'A header or query you provided implies functionality that is not implemented'],
  // A conditional GET/HEAD that holds: no body at all (server.ts), as S3.
  NotModified: [304, 'Not Modified'],
  OperationAborted: [409, 'A conflicting conditional operation is currently in progress against this resource. Please try again.'],
  PreconditionFailed: [412, 'At least one of the pre-conditions you specified did not hold'],
  SignatureDoesNotMatch: [403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'],
  XAmzContentSHA256Mismatch: [400, "The provided 'x-amz-content-sha256' header does not match what was computed."],
} as const satisfies Record<string, readonly [number, string]>;

export type S3ErrorCode = keyof typeof CODES;

export class S3Error extends Error {
  readonly status: number;
  /**
   * @param fields extra elements of the `<Error>` document (Key, BucketName, UploadId, ...)
   * @param headers extra response headers (Content-Range on a 416, ETag on a 304)
   */
  constructor(
    readonly code: S3ErrorCode,
    message?: string,
    readonly fields: Record<string, string | number> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? CODES[code][1]);
    this.name = code;
    this.status = CODES[code][0];
  }
}
