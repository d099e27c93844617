/**
 * The sinks' names and consumer groups, without their code: `registry.ts` builds the sinks on these
 * entries, and the infrastructure (infra/) creates one consumer group per entry from the same table,
 * without loading the sinks' dependencies.
 */
export const SINK_NAMES = [
  { name: 'adxSink', consumerGroupSetting: 'ADX_CONSUMER_GROUP', defaultConsumerGroup: 'adx-sink' },
  { name: 'elasticsearchSink', consumerGroupSetting: 'ES_CONSUMER_GROUP', defaultConsumerGroup: 'elasticsearch-sink' },
  { name: 'changeHistory', consumerGroupSetting: 'HISTORY_CONSUMER_GROUP', defaultConsumerGroup: 'change-history' },
] as const;

export type SinkName = (typeof SINK_NAMES)[number]['name'];

/** A sink's entry of `SINK_NAMES`. */
export function sinkNamed(name: SinkName): (typeof SINK_NAMES)[number] {
  const entry = SINK_NAMES.find((s) => s.name === name);
  if (entry === undefined) throw new Error(`no sink named ${name}`);
  return entry;
}
