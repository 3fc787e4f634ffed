"""The VGG19 style tools: ``vgg19`` (the shared backbone and Gram matrices), ``vectors`` (compact style
vectors for search), and neural style transfer (``transfer`` → ``engine`` → ``optimisers`` on
``transfer_model``, with ``pixels`` for resizing and colour)."""
