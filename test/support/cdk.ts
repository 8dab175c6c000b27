/**
 * Synthesizing WharfStack in tests, as `cdk synth` does (cdk.json's feature flags), and finding
 * resources in the template by type and properties, never by logical ID.
 *
 * Per test file: `const synth = stackSynthesizer('wharf-x-test-')` at the top level; it removes the
 * output folders it made after all tests of the file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, expect } from 'vitest';
import { WharfStack, type WharfStackProps } from '../../infra/wharf-stack.js';

export const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};

export interface Synth {
  stack: WharfStack;
  template: Template;
  outdir: string;
  /** cdk-nag and CloudFormation rule violations, `plugin: rule` (empty when not validated). */
  violations: string[];
}

export interface SynthOptions {
  /** Bundle the handler with the local esbuild (default: bundling skipped). */
  bundle?: boolean;
  /** Run cdk-nag (AwsSolutions) and CloudFormation's default rules (default: on). */
  validate?: boolean;
}

export interface Synthesizer {
  (props?: WharfStackProps, options?: SynthOptions): Synth;
  /** A new output folder, removed with the others. */
  outdir(): string;
}

/** A synth function for one test file; its output folders go after all tests (afterAll). */
export function stackSynthesizer(prefix: string): Synthesizer {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });
  const newOutdir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    outdirs.push(dir);
    return dir;
  };
  const synth = (props: WharfStackProps = {}, { bundle = false, validate = true }: SynthOptions = {}): Synth => {
    const outdir = newOutdir();
    const app = new App({
      outdir,
      context: { ...cdkJson.context, ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) },
      builtinCloudFormationValidation: validate,
    });
    if (validate) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = new WharfStack(app, 'Wharf', props);
    const template = Template.fromStack(stack);
    return { stack, template, outdir, violations: validate ? violationsIn(outdir) : [] };
  };
  return Object.assign(synth, { outdir: newOutdir });
}

function violationsIn(outdir: string): string[] {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{ pluginName: string; violations?: Array<{ ruleName: string }> }>;
  };
  return report.pluginReports.flatMap((r) => (r.violations ?? []).map((v) => `${r.pluginName}: ${v.ruleName}`));
}

export type Resources = Record<
  string,
  { Properties: Record<string, any>; Metadata?: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string }
>;
export interface Found {
  id: string;
  props: Record<string, any>;
}
export type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

/** The one resource of `type` (matching `props` when given); expects exactly one. */
export function only(template: Template, type: string, props?: Record<string, unknown>): Found & { metadata: Record<string, any> } {
  const found = template.findResources(type, props ? { Properties: props } : undefined) as Resources;
  const ids = Object.keys(found);
  expect(ids, `exactly one ${type}`).toHaveLength(1);
  const id = ids[0]!;
  return { id, props: found[id]!.Properties, metadata: found[id]!.Metadata ?? {} };
}

/** The one resource of `type` that passes `filter`; expects exactly one (`what` names it). */
function onlyWhere(template: Template, type: string, what: string, filter: (props: Record<string, any>) => boolean): Found {
  const found = Object.entries(template.findResources(type) as Resources).filter(([, r]) => filter(r.Properties));
  expect(found, `exactly one ${what}`).toHaveLength(1);
  return { id: found[0]![0], props: found[0]![1].Properties };
}

const isLogin = (props: Record<string, any>): boolean => props.Environment?.Variables?.IAM_LOGIN_ONLY !== undefined;

/** The registry function (not the IAM login function, which runs the same bundle with IAM_LOGIN_ONLY). */
export function registryFunction(template: Template): Found {
  return onlyWhere(template, 'AWS::Lambda::Function', 'registry function', (p) => !isLogin(p));
}

/** The IAM login function (IAM_LOGIN_ONLY set). */
export function loginFunction(template: Template): Found {
  return onlyWhere(template, 'AWS::Lambda::Function', 'IAM login function', isLogin);
}

/** Both functions; expects exactly two, one of each. */
export function functions(template: Template): { registry: Found; login: Found } {
  const all = Object.entries(template.findResources('AWS::Lambda::Function') as Resources);
  expect(all).toHaveLength(2);
  const login = all.filter(([, r]) => isLogin(r.Properties));
  const registry = all.filter(([, r]) => !isLogin(r.Properties));
  expect(login).toHaveLength(1);
  expect(registry).toHaveLength(1);
  return {
    registry: { id: registry[0]![0], props: registry[0]![1].Properties },
    login: { id: login[0]![0], props: login[0]![1].Properties },
  };
}

/** The registry's public Function URL (auth NONE), not the IAM login URL. */
export function publicUrl(template: Template): Found {
  return onlyWhere(template, 'AWS::Lambda::Url', 'public Function URL', (p) => p.AuthType === 'NONE');
}

/** The IAM policies attached to the role with this logical ID (every policy when undefined). */
export function policiesOf(template: Template, roleId?: string): Resources[string][] {
  const policies = template.findResources('AWS::IAM::Policy') as Resources;
  return Object.values(policies).filter((p) => roleId === undefined || JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]));
}

/** The statements of the IAM policies attached to the role with this logical ID (every policy when undefined). */
export function policyStatements(template: Template, roleId?: string): Statement[] {
  return policiesOf(template, roleId).flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

/** The statements of the IAM policies attached to the role a function runs as. */
export function roleStatements(template: Template, fn: { props: Record<string, any> }): Statement[] {
  return policyStatements(template, roleIdOf(fn));
}

/** The logical ID of the role a function runs as. */
export function roleIdOf(fn: { props: Record<string, any> }): string {
  return (fn.props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

/** The cdk-nag rules acknowledged anywhere in the stack, with their reasons. */
export function acknowledged(stack: WharfStack): Array<{ id: string; reason: string }> {
  return stack.node
    .findAll()
    .flatMap((c) => c.node.metadata)
    .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ id, reason })));
}

export const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
