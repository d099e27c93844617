import { app, type EventHubFunctionOptions } from '@azure/functions';
import { adxSinkHandler } from '../shared/functions/adxSinkHandler.js';
import { consumerGroup, EVENT_HUB_CONNECTION, eventHubName, retryPolicy } from '../shared/functions/settings.js';

export const adxSinkOptions: EventHubFunctionOptions = {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: eventHubName(process.env),
  consumerGroup: consumerGroup(process.env, 'ADX_CONSUMER_GROUP', 'adx-sink'),
  cardinality: 'many',
  retry: retryPolicy(process.env),
  handler: adxSinkHandler(),
};

app.eventHub('adxSink', adxSinkOptions);
