"""Images larger than the model input, processed tile by tile with bounded memory.

``grid`` cuts an image into overlapping tiles, ``sparse`` keeps each mask as its bounding box
and the pixels inside it (never a dense [N, H, W] stack), ``merge`` joins the masks that cross
tile borders into one object, and ``run`` drives the automatic mask generator over a grid.
"""
