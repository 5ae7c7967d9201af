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

# matrix with rownames -> data.frame with first column `idname`; scalars repeated to length n;
# cases run with their warnings and printed messages logged in the calling script's `warn_log`.
mat_df <- function(m, idname, prefix = "") {
  m <- as.matrix(m)
  df <- data.frame(id = rownames(m), stringsAsFactors = FALSE)
  names(df) <- idname
  for (j in seq_len(ncol(m))) df[[paste0(prefix, colnames(m)[j])]] <- m[, j]
  df
}

rep_to <- function(x, n) if (length(x) == 1L) rep(x, n) else x

run_case <- function(case, expr) {
  withCallingHandlers(
    tryCatch(expr, error = function(e) {
      msg <- paste("ERROR:", conditionMessage(e))
      cat("[", case, "] ", msg, "\n", sep = "", file = stderr())
      warn_log[nrow(warn_log) + 1, ] <<- c(case, msg)
      NULL
    }),
    warning = function(w) {
      msg <- gsub("[\r\n]+", " ", conditionMessage(w))
      cat("[", case, "] warning: ", msg, "\n", sep = "", file = stderr())
      warn_log[nrow(warn_log) + 1, ] <<- c(case, msg)
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msg <- gsub("[\r\n]+", " ", conditionMessage(m))
      cat("[", case, "] message: ", msg, "\n", sep = "", file = stderr())
      warn_log[nrow(warn_log) + 1, ] <<- c(case, paste("message:", msg))
      invokeRestart("muffleMessage")
    })
}

lmFit_logged <- function(case, ...) {
  printed <- capture.output(f <- lmFit(...))
  for (line in printed[nzchar(trimws(printed))]) {
    cat("[", case, "] printed: ", line, "\n", sep = "")
    warn_log[nrow(warn_log) + 1, ] <<- c(case, paste("printed:", trimws(line)))
  }
  f
}
