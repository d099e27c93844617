import { app } from '@azure/functions';
import { elasticsearchSinkHandler } from '../shared/functions/elasticsearchSinkHandler.js';
import { BODY_DATA_TYPE, consumerGroup, EVENT_HUB_CONNECTION, eventHubName, retryPolicy, type SinkTriggerOptions } from '../shared/functions/settings.js';

export const elasticsearchSinkOptions: SinkTriggerOptions = {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: eventHubName(process.env),
  consumerGroup: consumerGroup(process.env, 'ES_CONSUMER_GROUP', 'elasticsearch-sink'),
  cardinality: 'many',
  dataType: BODY_DATA_TYPE,
  retry: retryPolicy(process.env),
  handler: elasticsearchSinkHandler(),
};

app.eventHub('elasticsearchSink', elasticsearchSinkOptions);
