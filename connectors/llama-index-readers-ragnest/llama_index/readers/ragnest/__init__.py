"""ragnest's document parsers as a LlamaIndex reader.

    from llama_index.readers.ragnest import RagnestReader
    documents = RagnestReader(images=True).load_data("manuals/")
"""

from llama_index.readers.ragnest.base import RagnestReader

__all__ = ["RagnestReader"]
