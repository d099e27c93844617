import { app } from '@azure/functions';
import { adxSinkHandler } from '../shared/functions/adxSinkHandler.js';
import { consumerGroup, EVENT_HUB_CONNECTION, EVENT_HUB_NAME, retryPolicy } from '../shared/functions/settings.js';

app.eventHub('adxSink', {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: EVENT_HUB_NAME,
  consumerGroup: consumerGroup(process.env, 'ADX_CONSUMER_GROUP', 'adx-sink'),
  cardinality: 'many',
  retry: retryPolicy(process.env),
  handler: adxSinkHandler(),
});
