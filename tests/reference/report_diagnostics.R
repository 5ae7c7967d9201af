# Reference outputs of limma's diagnostic plots (plotMDS, plotSA) for manylm.report.
#
# Run from the repository root:
#     Rscript tests/reference/report_diagnostics.R
#
# Reads tests/reference/inputs/{bladder_expr,bladder_missing_expr,synth_small_expr}.tsv.gz and
# bladder_samples.tsv; writes tests/reference/report/*. Numbers with 17 significant digits.
# Deterministic: no random numbers are drawn.

suppressPackageStartupMessages(library(limma))

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "report")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path(ref_dir, "reference_writers.R"))

warn_log <- data.frame(case = character(0), warning = character(0), stringsAsFactors = FALSE)

write_tsv(data.frame(name = c("R", "limma"),
                     value = c(R.version.string, as.character(packageVersion("limma")))),
          file.path(out_dir, "versions.tsv"))

read_matrix <- function(name) {
  df <- read.delim(file.path(in_dir, name), check.names = FALSE, stringsAsFactors = FALSE,
                   colClasses = c(feature = "character"))
  m <- as.matrix(df[, -1])
  rownames(m) <- df$feature
  storage.mode(m) <- "double"
  m
}

y <- read_matrix("bladder_expr.tsv.gz")
ymiss <- read_matrix("bladder_missing_expr.tsv.gz")
ysmall <- read_matrix("synth_small_expr.tsv.gz")
samples <- read.delim(file.path(in_dir, "bladder_samples.tsv"), check.names = FALSE,
                      stringsAsFactors = FALSE)
stopifnot(identical(colnames(y), samples$sample))

# ---------------------------------------------------------------------------------- plotMDS
# Coordinates of the first three dimensions (eigenvector * sqrt(max(eigenvalue, 0)), as
# plotMDS's x and y), every eigenvalue with its share of the variance, and the double-centred
# matrix that plotMDS keeps as distance.matrix.squared.
write_mds <- function(case, x, ...) {
  run_case(case, {
    mds <- plotMDS(x, plot = FALSE, ...)
    lambda <- pmax(mds$eigen.values, 0)
    k <- min(3L, ncol(x))
    coords <- data.frame(sample = colnames(x), stringsAsFactors = FALSE)
    for (d in seq_len(k)) coords[[paste0("dim", d)]] <- mds$eigen.vectors[, d] * sqrt(lambda[d])
    write_tsv(coords, file.path(out_dir, paste0(case, ".coordinates.tsv")))
    write_tsv(data.frame(dimension = seq_along(lambda), eigen_value = mds$eigen.values,
                         var_explained = mds$var.explained),
              file.path(out_dir, paste0(case, ".eigen.tsv")))
    centred <- mds$distance.matrix.squared
    dimnames(centred) <- list(colnames(x), colnames(x))
    write_tsv(mat_df(centred, "sample"), file.path(out_dir, paste0(case, ".centred.tsv.gz")))
    write_tsv(data.frame(name = c("top", "n_features_used"),
                         value = c(mds$top, sum(rowSums(is.finite(x)) == ncol(x)))),
              file.path(out_dir, paste0(case, ".scalars.tsv")))
  })
}

write_mds("mds_pairwise", y, top = 500)
write_mds("mds_pairwise_missing", ymiss, top = 100)
write_mds("mds_common", y, top = 500, gene.selection = "common")
write_mds("mds_small", ysmall, top = 500)

# ----------------------------------------------------------------------------------- plotSA
# What plotSA draws: x = Amean, y = sqrt(sigma), the prior line sqrt(sqrt(s2.prior)), and with
# a robust prior the two-sided F-test outlier FDR (BH) that colours FDR <= 0.5 red.
cancer <- factor(samples$cancer, levels = c("Normal", "Biopsy", "Cancer"))
batch <- factor(samples$batch)
A <- model.matrix(~ cancer + batch)
fit <- lmFit(y, A)

write_sa <- function(case, eb) {
  n <- nrow(eb)
  out <- data.frame(feature = rownames(eb), x = eb$Amean, y = sqrt(eb$sigma),
                    line = sqrt(sqrt(rep_to(eb$s2.prior, n))), stringsAsFactors = FALSE)
  if (length(eb$df.prior) > 1L) {
    df2 <- max(eb$df.prior)
    s2 <- eb$sigma^2 / eb$s2.prior
    pdn <- pf(s2, df1 = eb$df.residual, df2 = df2)
    pup <- pf(s2, df1 = eb$df.residual, df2 = df2, lower.tail = FALSE)
    out$outlier_fdr <- p.adjust(2 * pmin(pdn, pup), method = "BH")
    out$outlier <- out$outlier_fdr <= 0.5
  }
  write_tsv(out, file.path(out_dir, paste0(case, ".tsv.gz")))
}

run_case("sa_dense", write_sa("sa_dense", eBayes(fit)))
run_case("sa_trend_robust", write_sa("sa_trend_robust", eBayes(fit, trend = TRUE, robust = TRUE)))

write_tsv(warn_log, file.path(out_dir, "warnings.tsv"))
