"""Georeferenced rasters in and out (optional extra ``samstream[geo]``: rasterio, shapely, geopandas).

``raster`` reads GeoTIFFs window by window with band selection and a percentile stretch;
``outputs`` writes a label GeoTIFF in the input's CRS and transform and polygons
(GeoJSON / GeoPackage) with their area in map units.
"""
