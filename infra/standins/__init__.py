"""Local HTTP stand-ins for cloud services we cannot run locally, so the real SDKs can talk to them.

- `pinecone_server.PineconeIndexServer`: the data plane of one Pinecone index (REST, as pinecone 10.x sends it).
- `gemini_server.GeminiServer`: the Gemini Developer API as google-genai 3.x calls it (embeddings, generation).

Both are in-process, stdlib + numpy, and start on a free port:

    with PineconeIndexServer(dimension=384) as pinecone_stub:
        index = Pinecone(api_key="test").index(host=pinecone_stub.url)

Each is also a CLI for local development (`python -m infra.standins.pinecone_server --help`).
"""
