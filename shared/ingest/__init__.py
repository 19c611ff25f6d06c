"""Ingestion: turn an editor's file into chunks ready to embed.

    parsers.parse_document(data, filename, content_type) -> ParsedDocument   clean text with structure kept
    chunker.chunk_document(document, max_tokens, overlap_tokens) -> [ChunkDraft]   heading-aware chunks
    tokens.count_tokens(text) -> int                                        a fast, conservative token estimate

Parsers raise only `UnsupportedFile`, `CorruptFile` or `EmptyDocument` (all `DocumentRejected`, 422, not retryable)
for bad input, each with a short reason an editor can act on.
"""
