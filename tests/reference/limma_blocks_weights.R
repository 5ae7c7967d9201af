# Reference outputs from R limma for blocked designs and weights, for the Python
# re-implementation (manylm): duplicateCorrelation, lmFit(block=, correlation=)
# (gls.series), arrayWeights (REML and gene-by-gene) and voomWithQualityWeights.
#
# Run from the repository root:
#     Rscript tests/reference/limma_blocks_weights.R
# Optional timing section (writes tests/reference/blocks/timings.tsv, takes minutes,
# not deterministic):
#     MANYLM_TIMING=1 Rscript tests/reference/limma_blocks_weights.R
#
# Writes tests/reference/inputs/blocked_* and tests/reference/blocks/*.
# Reads tests/reference/inputs/pasilla_counts.tsv.gz and pasilla_samples.tsv.
# All numbers are written with 17 significant digits ("%.17g"), missing as NA,
# NaN as NaN, infinities as Inf / -Inf. Tab separated, header row.

suppressPackageStartupMessages({
  library(limma)
  library(edgeR)
  library(statmod)
})

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "blocks")
dir.create(in_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

cat(R.version.string, "\n")
cat("limma", as.character(packageVersion("limma")), "\n")
cat("edgeR", as.character(packageVersion("edgeR")), "\n")
cat("statmod", as.character(packageVersion("statmod")), "\n")

# ---------------------------------------------------------------------------
# Writers (same conventions as limma_core.R)
# ---------------------------------------------------------------------------

source(file.path("tests", "reference", "reference_writers.R"))

warn_log <- data.frame(case = character(0), warning = character(0),
                       stringsAsFactors = FALSE)

# Evaluate expr, record (and print) warnings / messages / errors under `case`

# Per-feature fit table, cov.coefficients, and top table for an eBayes-ed fit
write_fit <- function(case, fit) {
  n <- nrow(fit$coefficients)
  coefs <- colnames(fit$coefficients)
  df <- data.frame(feature = rownames(fit$coefficients), stringsAsFactors = FALSE)
  for (cn in coefs) {
    df[[paste0("coef:", cn)]] <- fit$coefficients[, cn]
    df[[paste0("stdev:", cn)]] <- fit$stdev.unscaled[, cn]
    df[[paste0("t:", cn)]] <- fit$t[, cn]
    df[[paste0("p:", cn)]] <- fit$p.value[, cn]
  }
  df$sigma <- fit$sigma
  df$df_residual <- fit$df.residual
  df$Amean <- fit$Amean
  df$s2_post <- fit$s2.post
  df$df_prior <- rep_to(fit$df.prior, n)
  df$s2_prior <- rep_to(fit$s2.prior, n)
  # extras (same names as limma/<case>.fit.tsv.gz)
  df$df_total <- fit$df.total
  for (cn in coefs) df[[paste0("lods:", cn)]] <- fit$lods[, cn]
  if (!is.null(fit$F)) {
    df$F <- fit$F
    df$F_p <- fit$F.p.value
  }
  write_tsv(df, file.path(out_dir, paste0(case, "_fit.tsv.gz")))
  write_tsv(mat_df(fit$cov.coefficients, "coefficient"),
            file.path(out_dir, paste0(case, "_cov.tsv")))
}

write_top <- function(path, tab) {
  df <- data.frame(feature = rownames(tab), stringsAsFactors = FALSE)
  for (cn in colnames(tab)) df[[cn]] <- tab[[cn]]
  write_tsv(df, path)
}

top2 <- function(eb) topTable(eb, coef = 2, number = Inf, sort.by = "none", confint = TRUE)

sample_weights_df <- function(w, samples) {
  stopifnot(length(w) == length(samples))
  data.frame(sample = samples, weight = as.double(w), stringsAsFactors = FALSE)
}

prior_log <- data.frame(case = character(0), correlation = character(0),
                        df_prior = character(0), s2_prior = character(0),
                        stringsAsFactors = FALSE)
log_prior <- function(case, eb, correlation = NA_real_) {
  prior_log[nrow(prior_log) + 1, ] <<- c(case, fmt_num(correlation),
                                         fmt_num(eb$df.prior), fmt_num(eb$s2.prior))
}

# ---------------------------------------------------------------------------
# Inputs: simulated blocked data (8 patients x 3 samples)
# ---------------------------------------------------------------------------

set.seed(99)
ngenes <- 600L
npat <- 8L
patient <- rep(sprintf("P%02d", seq_len(npat)), each = 3L)
suffix <- rep(c("a", "b", "c"), times = npat)
sample_names <- paste0(patient, "_", suffix)
treatment <- ifelse(suffix == "a", "ctrl", "trt")
batch <- ifelse(patient %in% sprintf("P%02d", 1:4), "x", "y")
nsamples <- length(sample_names)
gene_names <- sprintf("g%03d", seq_len(ngenes))

# Random draws, in this order:
mu <- rnorm(ngenes, 8, 1)                                   # gene means
rho <- plogis(rnorm(ngenes, qlogis(0.3), 0.7))              # intra-block correlation
d0 <- 6
s0 <- 0.4
sigma <- sqrt(d0 * s0^2 / rchisq(ngenes, df = d0))          # residual sd
tau <- sqrt(rho / (1 - rho)) * sigma                        # patient-effect sd
de <- sort(sample(ngenes, round(0.1 * ngenes)))             # 60 DE genes
beta_trt <- numeric(ngenes)
beta_trt[de] <- sample(c(-1, 1), length(de), replace = TRUE) * runif(length(de), 0.5, 1.5)
beta_batch <- rnorm(ngenes, 0, 0.3)                         # batch y effect
U <- matrix(rnorm(ngenes * npat), ngenes, npat) * tau       # patient effects
noisy <- c("P02_b", "P05_c", "P07_a")
err_scale <- ifelse(sample_names %in% noisy, 2.5, 1)
Eps <- matrix(rnorm(ngenes * nsamples), ngenes, nsamples) *
  outer(sigma, err_scale)                                   # residual errors
pat_idx <- match(patient, sprintf("P%02d", seq_len(npat)))
y <- mu + outer(beta_trt, as.numeric(treatment == "trt")) +
  outer(beta_batch, as.numeric(batch == "y")) + U[, pat_idx] + Eps
dimnames(y) <- list(gene_names, sample_names)

# Missing copy: 1% of the cells, sampled uniformly (continues the seed-99 stream)
ymiss <- y
na_cells <- sample(length(y), round(0.01 * length(y)))
ymiss[na_cells] <- NA

samples <- data.frame(sample = sample_names, patient = patient, treatment = treatment,
                      batch = batch, stringsAsFactors = FALSE)
write_tsv(mat_df(y, "feature"), file.path(in_dir, "blocked_expr.tsv.gz"))
write_tsv(mat_df(ymiss, "feature"), file.path(in_dir, "blocked_expr_missing.tsv.gz"))
write_tsv(samples, file.path(in_dir, "blocked_samples.tsv"))

# Truth, for reference only (not an R limma output)
write_tsv(data.frame(feature = gene_names, mu = mu, rho = rho, sigma = sigma, tau = tau,
                     beta_trt = beta_trt, beta_batch = beta_batch,
                     stringsAsFactors = FALSE),
          file.path(out_dir, "sim_truth.tsv.gz"))

# Observation weights for the gls_weights case
set.seed(5)
W <- matrix(rgamma(ngenes * nsamples, 2, 2), ngenes)
dimnames(W) <- dimnames(y)
write_tsv(mat_df(W, "feature"), file.path(in_dir, "blocked_weights.tsv.gz"))

design <- model.matrix(~ factor(treatment, levels = c("ctrl", "trt")) +
                         factor(batch, levels = c("x", "y")))
colnames(design) <- c("(Intercept)", "treatmenttrt", "batchy")
rownames(design) <- sample_names
write_tsv(mat_df(design, "sample"), file.path(out_dir, "design.tsv"))

cat("blocked data:", nrow(y), "x", ncol(y), "; NA cells:", sum(is.na(ymiss)), "\n")

# ---------------------------------------------------------------------------
# a) duplicateCorrelation
# ---------------------------------------------------------------------------

dup_rows <- list()
add_dup <- function(label, dc) {
  a <- dc$atanh.correlations
  dup_rows[[paste0(label, ".consensus.correlation")]] <<- dc$consensus.correlation
  dup_rows[[paste0(label, ".cor")]] <<- dc$cor
  dup_rows[[paste0(label, ".atanh_min")]] <<- min(a, na.rm = TRUE)
  dup_rows[[paste0(label, ".atanh_median")]] <<- median(a, na.rm = TRUE)
  dup_rows[[paste0(label, ".atanh_max")]] <<- max(a, na.rm = TRUE)
  dup_rows[[paste0(label, ".atanh_mean")]] <<- mean(a, na.rm = TRUE)
  dup_rows[[paste0(label, ".n_atanh_na")]] <<- sum(is.na(a))
  dup_rows[[paste0(label, ".n_at_rhomin")]] <<- sum(a == atanh(1 / (1 - 3) + 0.01), na.rm = TRUE)
  dup_rows[[paste0(label, ".n_at_rhomax")]] <<- sum(a == atanh(0.99), na.rm = TRUE)
  write_tsv(data.frame(feature = gene_names, value = a, stringsAsFactors = FALSE),
            file.path(out_dir, paste0("dupcor_", label, "_atanh.tsv.gz")))
}

dc <- run_case("dupcor_complete", duplicateCorrelation(y, design, block = patient))
add_dup("complete", dc)
dcm <- run_case("dupcor_missing", duplicateCorrelation(ymiss, design, block = patient))
add_dup("missing", dcm)
dcw <- run_case("dupcor_weights",
                duplicateCorrelation(y, design, block = patient, weights = W))
add_dup("weights", dcw)

# ---------------------------------------------------------------------------
# b, c, d) lmFit with block + correlation (gls.series)
# ---------------------------------------------------------------------------

gls_case <- function(case, yy, cor, weights = NULL) {
  run_case(case, {
    fit <- lmFit_logged(case, yy, design, block = patient, correlation = cor,
                        weights = weights)
    eb <- eBayes(fit)
    write_fit(case, eb)
    write_top(file.path(out_dir, paste0(case, "_top.tsv.gz")), top2(eb))
    log_prior(case, eb, cor)
    eb
  })
}
eb_c <- gls_case("gls_complete", y, dc$consensus.correlation)
eb_m <- gls_case("gls_missing", ymiss, dcm$consensus.correlation)
eb_w <- gls_case("gls_weights", y, dcw$consensus.correlation, weights = W)

# ---------------------------------------------------------------------------
# e) arrayWeights
# ---------------------------------------------------------------------------

# "auto" picks "reml" when there are no NA/Inf values and no weights, else "genebygene"
aw <- run_case("array_weights", arrayWeights(y, design))
aw_reml <- run_case("array_weights", arrayWeights(y, design, method = "reml"))
stopifnot(identical(aw, aw_reml))
aw_gbg <- run_case("array_weights_genebygene",
                   arrayWeights(y, design, method = "genebygene"))
aw_m <- run_case("array_weights_missing", arrayWeights(ymiss, design))
aw_m_gbg <- run_case("array_weights_missing",
                     arrayWeights(ymiss, design, method = "genebygene"))
stopifnot(identical(aw_m, aw_m_gbg))
write_tsv(sample_weights_df(aw, sample_names), file.path(out_dir, "array_weights.tsv"))
write_tsv(sample_weights_df(aw_gbg, sample_names),
          file.path(out_dir, "array_weights_genebygene.tsv"))
write_tsv(sample_weights_df(aw_m, sample_names),
          file.path(out_dir, "array_weights_missing.tsv"))
# prior observation weights ("auto" -> gene by gene) and variance groups (both methods)
aw_w <- run_case("array_weights_prior", arrayWeights(y, design, weights = W))
write_tsv(sample_weights_df(aw_w, sample_names),
          file.path(out_dir, "array_weights_prior_weights.tsv"))
sample_batch <- factor(batch, levels = c("x", "y"))
aw_g_reml <- run_case("array_weights_group",
                      arrayWeights(y, design, var.group = sample_batch, method = "reml"))
aw_g_gbg <- run_case("array_weights_group",
                     arrayWeights(y, design, var.group = sample_batch, method = "genebygene"))
write_tsv(sample_weights_df(aw_g_reml, sample_names),
          file.path(out_dir, "array_weights_group_reml.tsv"))
write_tsv(sample_weights_df(aw_g_gbg, sample_names),
          file.path(out_dir, "array_weights_group_genebygene.tsv"))
run_case("array_weights_fit", {
  eb <- eBayes(lmFit_logged("array_weights_fit", y, design, weights = aw))
  write_top(file.path(out_dir, "array_weights_top.tsv.gz"), top2(eb))
  log_prior("array_weights_fit", eb)
})

# ---------------------------------------------------------------------------
# f) voomWithQualityWeights on pasilla
# ---------------------------------------------------------------------------

pc <- read.delim(file.path(in_dir, "pasilla_counts.tsv.gz"), check.names = FALSE,
                 stringsAsFactors = FALSE)
ps <- read.delim(file.path(in_dir, "pasilla_samples.tsv"), check.names = FALSE,
                 stringsAsFactors = FALSE)
counts <- as.matrix(pc[, -1])
rownames(counts) <- pc$feature
stopifnot(identical(colnames(counts), ps$sample))
condition <- factor(ps$condition, levels = c("untreated", "treated"))
type <- factor(ps$type, levels = c("paired_end", "single_read"))
run_case("vqw", {
  d <- DGEList(counts)
  keep <- filterByExpr(d, group = condition)
  d <- d[keep, , keep.lib.sizes = FALSE]
  d <- calcNormFactors(d)
  pdesign <- model.matrix(~ condition + type)
  rownames(pdesign) <- colnames(d)
  vq <- voomWithQualityWeights(d, pdesign)
  cat("vqw genes:", nrow(vq), "\n")
  write_tsv(sample_weights_df(vq$targets$sample.weights, colnames(d)),
            file.path(out_dir, "vqw_sample_weights.tsv"))
  vw <- vq$weights
  dimnames(vw) <- dimnames(vq$E)   # voom returns weights without dimnames
  write_tsv(mat_df(vw, "feature"), file.path(out_dir, "vqw_weights.tsv.gz"))
  eb <- eBayes(lmFit(vq, pdesign))
  write_top(file.path(out_dir, "vqw_top.tsv.gz"), top2(eb))
  log_prior("vqw", eb)
})

# ---------------------------------------------------------------------------
# Scalars and logs
# ---------------------------------------------------------------------------

write_tsv(data.frame(name = names(dup_rows), value = unlist(lapply(dup_rows, as.double)),
                     stringsAsFactors = FALSE),
          file.path(out_dir, "dupcor.tsv"))
write_tsv(warn_log, file.path(out_dir, "warnings.tsv"))
write_tsv(prior_log, file.path(out_dir, "prior_summary.tsv"))
write_tsv(data.frame(name = c("R", "limma", "edgeR", "statmod"),
                     value = c(R.version.string, as.character(packageVersion("limma")),
                               as.character(packageVersion("edgeR")),
                               as.character(packageVersion("statmod"))),
                     stringsAsFactors = FALSE),
          file.path(out_dir, "versions.tsv"))
print(prior_log)
print(data.frame(name = names(dup_rows), value = fmt_num(unlist(dup_rows))), row.names = FALSE)

# ---------------------------------------------------------------------------
# g) Timing (optional; MANYLM_TIMING=1). Not used by the tests.
# ---------------------------------------------------------------------------

if (identical(Sys.getenv("MANYLM_TIMING"), "1")) {
  set.seed(2024)
  tg <- 20000L
  tn <- 100L
  tblock <- rep(seq_len(25L), each = 4L)
  tgroup <- factor(rep(c("A", "B"), times = 50L))   # 2 A + 2 B within every block
  tdesign <- model.matrix(~ tgroup)
  ty <- matrix(rnorm(tg * tn), tg, tn)
  t_dc <- system.time(tdc <- duplicateCorrelation(ty, tdesign, block = tblock))[["elapsed"]]
  cat("timing duplicateCorrelation 20000x100:", t_dc, "s; consensus",
      tdc$consensus.correlation, "\n")
  t_gls <- system.time(eBayes(lmFit(ty, tdesign, block = tblock,
                                    correlation = tdc$consensus.correlation)))[["elapsed"]]
  rm(ty)

  vg <- 30000L
  vn <- 200L
  vgroup <- factor(rep(c("A", "B"), times = vn / 2L))
  vdesign <- model.matrix(~ vgroup)
  vmu <- 10 * 2^rnorm(vg, 2, 2)
  vlib <- runif(vn, 0.5, 1.5)
  vcounts <- matrix(rnbinom(vg * vn, mu = outer(vmu, vlib), size = 1 / 0.2), vg, vn)
  rownames(vcounts) <- sprintf("gene%05d", seq_len(vg))
  t_voom <- system.time({
    v <- voom(vcounts, vdesign)
    tt <- topTable(eBayes(lmFit(v, vdesign)), coef = 2, number = Inf, sort.by = "none")
  })[["elapsed"]]
  t_vqw <- system.time(voomWithQualityWeights(vcounts[1:5000, ], vdesign))[["elapsed"]]
  cat("timing voom+lmFit+eBayes+topTable 30000x200:", t_voom, "s\n")
  write_tsv(data.frame(
    name = c("duplicateCorrelation_20000x100_25blocks_of_4",
             "lmFit_block_eBayes_20000x100",
             "voom_lmFit_eBayes_topTable_30000x200",
             "voomWithQualityWeights_5000x200"),
    seconds = sprintf("%.3f", c(t_dc, t_gls, t_voom, t_vqw)), stringsAsFactors = FALSE),
    file.path(out_dir, "timings.tsv"))
}

cat("done\n")
