// input (being written)
