/**
 * The shapes of Lambda Function URL events and results (payload format 2.0), as AWS sends them:
 * lower-case headers (repeated ones joined by commas), `rawPath` and `rawQueryString` untouched,
 * binary bodies base64-encoded.
 */
export interface FunctionUrlEvent {
  version: '2.0';
  rawPath: string;
  rawQueryString: string;
  headers: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded: boolean;
  requestContext: {
    domainName: string;
    http: { method: string; path: string; protocol?: string; sourceIp?: string };
    requestId?: string;
    /** Present only behind a Function URL with AWS_IAM auth: the caller AWS authenticated. */
    authorizer?: { iam?: { userArn?: string; accountId?: string; callerId?: string } };
  };
}

export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}
