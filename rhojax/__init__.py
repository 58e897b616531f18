"""rhojax: where is compression of a transformer language model safe?"""

__version__ = "0.2.0"
