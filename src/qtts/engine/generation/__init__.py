"""Generation: codes from a prompt, frame by frame.

The lean talker loop (``talker``) and code-predictor loop (``code_predictor``) replace
upstream's two ``generate`` methods with the same submodules and sampling; ``layers`` is one
decoder layer of theirs, ``native_stack`` runs a whole step in one native call.  The
continuous batcher (``batcher``) runs many streams in one loop; ``streaming`` decodes frame
groups while generation goes on; ``guard`` stops runaways; ``prefix_cache`` keeps a voice's
prompt keys and values.
"""
