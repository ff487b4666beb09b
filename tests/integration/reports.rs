// reports (under construction)
