-- Conversation context records (issue 8, docs/contexts.md): every winning version of every message
-- of every user's conversations, merged last-write-wins. Written by processors/context-runner.ts
-- from the topic quotaflow.context.v1; read by GET /v1/contexts/:user (storage/queries/contexts.ts).
CREATE TABLE IF NOT EXISTS contexts
(
    tenant          String,
    user_id         String,
    conversation_id String,
    message_id      String,
    platform        LowCardinality(String) COMMENT 'platform that wrote this version: openai, anthropic, ...',
    role            LowCardinality(String) COMMENT 'system | user | assistant | tool',
    content         String COMMENT 'the message text; empty when content_stored = 0 (tenant keeps hashes only) or on a tombstone',
    content_stored  UInt8 COMMENT '1 when content holds the text',
    content_sha256  String COMMENT 'hex SHA-256 of the UTF-8 text; empty on a tombstone',
    content_length  UInt32 COMMENT 'UTF-8 bytes of the text',
    tool_call_id    String COMMENT 'role tool: the tool call the result answers',
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC') COMMENT 'when this version was written (the later wins)',
    deleted         UInt8 COMMENT '1 = tombstone: the message was deleted at updated_at',
    token_count     Nullable(UInt32),
    digest          String COMMENT 'hex SHA-256 of the canonical version (domain/context-merge.ts): tie-break at equal updated_at',
    -- ReplacingMergeTree keeps the row with the greatest version per sorting key, so the table itself
    -- resolves last-write-wins whatever the arrival order: updated_at first, then tombstone over live,
    -- then the digest (domain/context-merge.ts contextVersion; UInt256 holds the 64-bit ms + 129 bits).
    version         UInt256 COMMENT 'updated_at_ms * 2^129 + deleted * 2^128 + first 128 bits of digest',
    seq             UInt64 COMMENT 'per-(tenant, user_id) change number given by the processor when the version won; sync cursors count it',
    source          String COMMENT 'topic/partition/offset, or the http:<request id>:<index> of the ingest request',
    ingested_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
-- One row per message after merges. The key serves the reads: one user's history (tenant, user_id
-- prefix: incremental sync and export) and the processor's point look-ups of a message's version.
-- Reads use FINAL (exact before background merges). No PARTITION BY: a batch's insert is one part (or,
-- past max_insert_block_size rows, parts committed in row order), and its rows are in seq order, so a
-- reader never sees a change before an earlier-numbered one (sync cursors rely on it; domain/context-cursor.ts).
ORDER BY (tenant, user_id, conversation_id, message_id)
-- Replaying the same insert block (same insert_deduplication_token) is a no-op.
SETTINGS non_replicated_deduplication_window = 1000;
