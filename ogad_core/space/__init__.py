"""The gradient space, torch-free: the one PCA helper (:mod:`.pca`), the one nearest-neighbour
search (:mod:`.knn`, faiss: exact up to ``ANN_MIN_ROWS`` rows, HNSW above) that the map, the
evidence, the explanations and the re-ranker share."""
