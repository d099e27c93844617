import { app, type EventHubFunctionOptions } from '@azure/functions';
import { elasticsearchSinkHandler } from '../shared/functions/elasticsearchSinkHandler.js';
import { consumerGroup, EVENT_HUB_CONNECTION, eventHubName, retryPolicy } from '../shared/functions/settings.js';

export const elasticsearchSinkOptions: EventHubFunctionOptions = {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: eventHubName(process.env),
  consumerGroup: consumerGroup(process.env, 'ES_CONSUMER_GROUP', 'elasticsearch-sink'),
  cardinality: 'many',
  retry: retryPolicy(process.env),
  handler: elasticsearchSinkHandler(),
};

app.eventHub('elasticsearchSink', elasticsearchSinkOptions);
