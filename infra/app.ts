#!/usr/bin/env node
/**
 * The CDK app: `npx cdk synth|diff|deploy` (cdk.json runs this with tsx). Environment-agnostic
 * unless `-c wharf:account=… -c wharf:region=…` are given, so synth needs no AWS credentials.
 * cdk-nag's AWS Solutions rules run on every synth; a finding without a reasoned suppression fails it.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { settingsFromContext } from './context.js';
import { WharfStack } from './wharf-stack.js';

const app = new App();
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
const { stackName, props } = settingsFromContext((key) => app.node.tryGetContext(key));

new WharfStack(app, stackName, {
  ...props,
  description: 'wharf: serverless OCI container registry (Lambda Function URL, S3, DynamoDB)',
  tags: { project: 'wharf', ...props.tags },
});

app.synth();
