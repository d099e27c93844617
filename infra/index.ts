// The Pulumi program (Pulumi.yaml `main`, compiled to dist/infra/index.js): the stack's outputs are
// what `npm run deploy` reads to publish the Functions app and set up the stores.
import * as pulumi from '@pulumi/pulumi';
import { readConfig } from './config.js';
import { createPipeline } from './pipeline.js';

const cfg = readConfig();
const pipeline = createPipeline(cfg, pulumi.getStack());

export const resourceGroupName = pipeline.resourceGroupName;
export const functionAppName = pipeline.functionAppName;
export const functionAppHostName = pipeline.functionAppHostName;
export const eventHubsNamespace = pipeline.eventHubsNamespace;
export const storageAccountName = pipeline.storageAccountName;
export const readerAppName = pipeline.readerAppName;
export const readerIdentityName = pipeline.readerIdentityName;
export const appInsightsName = pipeline.appInsightsName;
export const elasticsearchUrl = cfg.elasticsearch.url;
export const adxClusterUrl = pipeline.adxClusterUrl ?? '';
export const adxDatabase = pipeline.adxDatabase ?? '';
