import { app } from '@azure/functions';
import { elasticsearchSinkHandler } from '../shared/functions/elasticsearchSinkHandler.js';
import { consumerGroup, EVENT_HUB_CONNECTION, EVENT_HUB_NAME, retryPolicy } from '../shared/functions/settings.js';

app.eventHub('elasticsearchSink', {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: EVENT_HUB_NAME,
  consumerGroup: consumerGroup(process.env, 'ES_CONSUMER_GROUP', 'elasticsearch-sink'),
  cardinality: 'many',
  retry: retryPolicy(process.env),
  handler: elasticsearchSinkHandler(),
});
