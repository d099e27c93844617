import { app } from '@azure/functions';
import { changeHistoryHandler } from '../shared/functions/changeHistoryHandler.js';
import { consumerGroup, EVENT_HUB_CONNECTION, EVENT_HUB_NAME, retryPolicy } from '../shared/functions/settings.js';

app.eventHub('changeHistory', {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: EVENT_HUB_NAME,
  consumerGroup: consumerGroup(process.env, 'HISTORY_CONSUMER_GROUP', 'change-history'),
  cardinality: 'many',
  retry: retryPolicy(process.env),
  handler: changeHistoryHandler(),
});
