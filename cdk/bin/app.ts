#!/usr/bin/env node
import { Annotations, App } from 'aws-cdk-lib';
import { buildRelayApp } from '../lib/app';
import { loadParameters, parametersFile, PARAMETERS_CONTEXT } from '../lib/parameters';

// Parameters per environment: cdk synth -c cognito-relay:parameters=parameters/prod.json
const app = new App();
const { file, example } = parametersFile(app);
const relay = buildRelayApp(loadParameters(file), { app });
if (example) {
  for (const stack of [relay.primary, relay.standby, relay.global]) {
    Annotations.of(stack).addWarningV2(
      'cognito-relay:example-parameters',
      `Synthesised with the EXAMPLE parameters (${file}): fake account and pools. ` +
        `Deploy with -c ${PARAMETERS_CONTEXT}=<your file> (README, "Parameters per environment").`,
    );
  }
}
app.synth();
