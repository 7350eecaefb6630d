"""An existing LangChain app gains ragnest retrieval by swapping one line.

    python examples/langchain_app.py [STORE_DIR]

The app is an ordinary LCEL chain, ``{context, question} | prompt | chat model |
StrOutputParser``. Two swaps, each one line:

1. its retriever becomes ``RagnestRetriever`` over ragnest's offline ``lite`` pipeline
   (PDF pages with their screenshots, WordLlama ladder + BM25, embedded Qdrant);
2. its ``InMemoryVectorStore`` becomes ``RagnestVectorStore``: the app keeps its own
   embeddings, ragnest adds BM25 fusion and its store; the rest of the app is unchanged.

Runs offline: the chat model is langchain-core's fake and the embeddings are
langchain-core's deterministic fake (use ChatOpenAI, OpenAIEmbeddings, ... in a real app).
Needs: pip install -e ".[lite]" -e connectors/langchain-ragnest
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel, FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_ragnest import RagnestLoader, RagnestRetriever, RagnestVectorStore

DOCS = Path(__file__).resolve().parent / "docs"
QUESTION = "How often should I descale the machine?"

PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only and cite the pages as [P1], [P2], ..."),
    ("human", "Context:\n{context}\n\nQuestion: {question}"),
])


def format_docs(docs: list[Document]) -> str:
    """The retrieved pages as numbered context, ``[P1] manual.pdf p. 5`` first."""
    parts = []
    for i, doc in enumerate(docs, 1):
        name = Path(str(doc.metadata.get("source", ""))).name
        page = doc.metadata.get("page")
        parts.append(f"[P{i}] {name}" + (f" p. {page}" if page else "") + f"\n{doc.page_content}")
    return "\n\n".join(parts)


def build_chain(retriever: BaseRetriever, llm: BaseChatModel) -> Runnable:
    """The app's chain, as it was written: nothing here knows about ragnest."""
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )


def fake_llm() -> BaseChatModel:
    return FakeListChatModel(responses=["Descale the machine every 8 weeks [P1]."])


def retriever_swap(store: str) -> None:
    # before: retriever = InMemoryVectorStore.from_documents(docs, embeddings).as_retriever()
    retriever = RagnestRetriever.from_yaml("lite", env={"RAGNEST_STORE": store}, k=3)
    try:
        report = retriever.pipeline.ingest([DOCS], progress=False)
        print(f"ingested {report.files} files, {report.pages} pages")
        chain = build_chain(retriever, fake_llm())
        print("answer:", chain.invoke(QUESTION))
        for doc in retriever.invoke(QUESTION):
            meta = doc.metadata
            print(f"  {Path(meta['source']).name} p. {meta['page']}  score {meta['score']:.3f}"
                  f"  image {meta['image']['uri'].rsplit('/', 1)[-1]}")
    finally:
        retriever.close()


def vector_store_swap() -> None:
    embeddings = DeterministicFakeEmbedding(size=64)  # the app's own embeddings, kept
    docs = RagnestLoader(DOCS).load()  # ragnest's parsers: a Document per page or section
    # before: store = InMemoryVectorStore(embeddings)
    store = RagnestVectorStore(embeddings)
    try:
        store.add_documents(docs)
        retriever = store.as_retriever(search_kwargs={"k": 2})
        chain = build_chain(retriever, fake_llm())
        print("answer:", chain.invoke(QUESTION))
        for doc in retriever.invoke(QUESTION):
            print(f"  {Path(doc.metadata['source']).name} p. {doc.metadata['page']}")
    finally:
        store.close()


def main(store: str) -> None:
    print("1. RagnestRetriever in the chain")
    retriever_swap(store)
    print("2. RagnestVectorStore in place of InMemoryVectorStore")
    vector_store_swap()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ragnest-langchain-"))
