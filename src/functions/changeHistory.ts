import { app } from '@azure/functions';
import { changeHistoryHandler } from '../shared/functions/changeHistoryHandler.js';
import { BODY_DATA_TYPE, consumerGroup, EVENT_HUB_CONNECTION, eventHubName, retryPolicy, type SinkTriggerOptions } from '../shared/functions/settings.js';

export const changeHistoryOptions: SinkTriggerOptions = {
  connection: EVENT_HUB_CONNECTION,
  eventHubName: eventHubName(process.env),
  consumerGroup: consumerGroup(process.env, 'HISTORY_CONSUMER_GROUP', 'change-history'),
  cardinality: 'many',
  dataType: BODY_DATA_TYPE,
  retry: retryPolicy(process.env),
  handler: changeHistoryHandler(),
};

app.eventHub('changeHistory', changeHistoryOptions);
