#!/usr/bin/env node
import { deploymentConfig } from '../lib/config';
import { buildRelayApp } from '../lib/app';

buildRelayApp(deploymentConfig).app.synth();
