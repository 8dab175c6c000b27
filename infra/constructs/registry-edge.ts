import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Duration, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface RegistryEdgeProps {
  /** The registry function's URL: the distribution's only origin. */
  readonly functionUrl: lambda.IFunctionUrl;
  /**
   * A custom host name for the registry (e.g. `registry.example.com`). A Function URL cannot carry
   * a custom domain itself, so the domain goes on the distribution; point a CNAME (or Route 53
   * alias) at the distribution's domain name yourself.
   *
   * @default - none: clients use the `<id>.cloudfront.net` name
   */
  readonly domainName?: string;
  /**
   * ARN of an ACM certificate in us-east-1 (CloudFront only reads certificates there) that covers
   * {@link domainName}. Required with a domain name.
   *
   * @default - none
   */
  readonly certificateArn?: string;
}

/**
 * CloudFront in front of the Function URL: a pass-through proxy, never a cache. Caching is disabled
 * (manifests by tag change, and every response depends on the request), every method is allowed
 * (pushes use POST, PATCH, PUT, DELETE), all viewer headers, query strings and cookies except Host
 * are forwarded (the Function URL only answers to its own Host), and viewers must use HTTPS.
 */
export class RegistryEdge extends Construct {
  readonly distribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: RegistryEdgeProps) {
    super(scope, id);

    const certificate = props.certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn)
      : undefined;

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'wharf: OCI registry (pass-through to the Lambda Function URL)',
      defaultBehavior: {
        // Host name = the third '/'-separated part of https://<id>.lambda-url.<region>.on.aws/;
        // the origin is HTTPS only (TLS 1.2) with the Function URL's own certificate.
        origin: new origins.FunctionUrlOrigin(props.functionUrl, {
          // The most CloudFront waits for a response without a quota increase (default 30 s). A
          // request the function takes longer over (a slow upload finishing) gets a 504 from
          // CloudFront although the function completes it; clients retry, and the direct Function URL
          // (15 minute timeout) has no such limit.
          readTimeout: Duration.seconds(60),
        }),
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        // HTTPS_ONLY rather than REDIRECT_TO_HTTPS: a redirected PUT/PATCH would have sent its body
        // in clear text first, and registry clients are configured with https:// anyway.
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        compress: false, // blobs are already compressed; manifests are small
      },
      domainNames: props.domainName ? [props.domainName] : undefined,
      certificate,
      // Only settable with a custom certificate (the default one is fixed at TLSv1).
      minimumProtocolVersion: certificate ? cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 : undefined,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
    });

    const acknowledge = (rule: string, reason: string): void => {
      Validations.of(this.distribution).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });
    };
    acknowledge(
      'CFR1',
      'No geo restriction: a container registry serves its clients from wherever they run (CI runners, ' +
        'clusters in any region); access control belongs to the registry authentication, not geography.',
    );
    acknowledge(
      'CFR2',
      'No WAF web ACL: it costs at least $5/month plus $0.60 per million requests, more than the rest ' +
        'of an idle deployment; the Function URL behind the distribution is public either way. Attach ' +
        'one (webAclId) if the registry needs rate limiting.',
    );
    acknowledge(
      'CFR3',
      'No CloudFront access logs: every request reaching the registry is already logged by the function ' +
        '(one structured EMF line with method, path, operation, status, duration), and legacy standard ' +
        'logging needs an extra ACL-enabled bucket.',
    );
    if (!certificate) {
      acknowledge(
        'CFR4',
        'Without a custom domain the distribution uses the default *.cloudfront.net certificate, whose ' +
          'security policy CloudFront fixes at TLSv1; give domainName and certificateArn to enforce ' +
          'TLSv1.2_2021 (set as the minimum protocol version).',
      );
    }
  }
}
