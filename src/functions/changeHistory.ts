import { app, type EventHubFunctionOptions } from '@azure/functions';
import { changeHistoryHandler } from '../shared/functions/changeHistoryHandler.js';
import { consumerGroup, EVENT_HUB_CONNECTION, eventHubName, retryPolicy } from '../shared/functions/settings.js';

export const changeHistoryOptions: EventHubFunctionOptions = {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: eventHubName(process.env),
  consumerGroup: consumerGroup(process.env, 'HISTORY_CONSUMER_GROUP', 'change-history'),
  cardinality: 'many',
  retry: retryPolicy(process.env),
  handler: changeHistoryHandler(),
};

app.eventHub('changeHistory', changeHistoryOptions);
