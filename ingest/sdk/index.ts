/**
 * quotaflow emitter SDK (`quotaflow/sdk`): fire-and-forget usage events plus provider normalisers.
 * See docs/sdk.md.
 */
export {
  createEmitter,
  type DropInfo,
  type DropReason,
  type Emitter,
  type EmitterOptions,
  type EmitterStats,
  type UsageEventInput,
} from './emitter.ts';
export {
  type AnthropicMessageLike,
  type AnthropicStreamEventLike,
  type AnthropicUsageLike,
  anthropicStreamUsage,
  fromAnthropicMessage,
  fromOpenAIChatCompletion,
  fromOpenAIResponse,
  type NormaliseOptions,
  type OpenAIChatChunkLike,
  type OpenAIChatCompletionLike,
  type OpenAIChatUsageLike,
  type OpenAIResponseLike,
  openAIChatStreamUsage,
  type ProviderUsage,
  type StreamUsageAccumulator,
  type StreamUsageResult,
} from './providers.ts';
