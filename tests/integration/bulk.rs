// bulk (being written)
