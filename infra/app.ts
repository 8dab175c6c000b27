#!/usr/bin/env node
/**
 * The CDK app: `npx cdk synth|diff|deploy` (cdk.json runs this with tsx). Environment-agnostic
 * unless `-c wharf:account=… -c wharf:region=…` are given, so synth needs no AWS credentials.
 * cdk-nag's AWS Solutions rules run on every synth; a finding without a reasoned suppression fails it.
 *
 * With `-c wharf:replicaRegions=…` the app holds several stacks (see buildStacks in infra/stacks.ts).
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { settingsFromContext } from './context.js';
import { buildStacks } from './stacks.js';

const app = new App();
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
buildStacks(app, settingsFromContext((key) => app.node.tryGetContext(key)));

app.synth();
