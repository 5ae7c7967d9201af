# Writers shared by the reference scripts: 17 significant digits, NA / NaN / Inf spelled out,
# tab-separated with a header, gzip when the path ends in .gz. Sourced from the repository root.

fmt_num <- function(x) {
  x <- as.double(x)
  out <- sprintf("%.17g", x)
  out[is.na(x) & !is.nan(x)] <- "NA"
  out[is.nan(x)] <- "NaN"
  out[x == Inf & !is.na(x)] <- "Inf"
  out[x == -Inf & !is.na(x)] <- "-Inf"
  out
}

fmt_col <- function(x) {
  if (is.factor(x)) x <- as.character(x)
  if (is.logical(x)) {
    out <- ifelse(x, "1", "0")
    out[is.na(x)] <- "NA"
    return(out)
  }
  if (is.integer(x)) {
    out <- sprintf("%d", x)
    out[is.na(x)] <- "NA"
    return(out)
  }
  if (is.numeric(x)) return(fmt_num(x))
  out <- as.character(x)
  out[is.na(x)] <- "NA"
  out
}

# df: data.frame (or matrix). Writes tab-separated with header; gz if path ends .gz
write_tsv <- function(df, path) {
  df <- as.data.frame(df, stringsAsFactors = FALSE, check.names = FALSE)
  cols <- lapply(df, fmt_col)
  lines <- do.call(paste, c(cols, sep = "\t"))
  header <- paste(colnames(df), collapse = "\t")
  if (grepl("\\.gz$", path)) {
    con <- gzfile(path, "wb", compression = 9)
  } else {
    con <- file(path, "wb")
  }
  writeLines(c(header, lines), con, sep = "\n")
  close(con)
  invisible(path)
}
