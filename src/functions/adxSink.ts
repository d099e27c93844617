import { app } from '@azure/functions';
import { adxSinkHandler } from '../shared/functions/adxSinkHandler.js';
import { BODY_DATA_TYPE, consumerGroup, EVENT_HUB_CONNECTION, eventHubName, retryPolicy, type SinkTriggerOptions } from '../shared/functions/settings.js';

export const adxSinkOptions: SinkTriggerOptions = {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: eventHubName(process.env),
  consumerGroup: consumerGroup(process.env, 'ADX_CONSUMER_GROUP', 'adx-sink'),
  cardinality: 'many',
  dataType: BODY_DATA_TYPE,
  retry: retryPolicy(process.env),
  handler: adxSinkHandler(),
};

app.eventHub('adxSink', adxSinkOptions);
