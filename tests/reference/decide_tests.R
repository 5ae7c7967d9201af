# Reference outputs from R limma's decideTests (hierarchical and nestedF, with separate and
# global alongside) for manylm's decide_tests.
#
# Run from the repository root:
#     Rscript tests/reference/decide_tests.R
#
# Reads tests/reference/inputs/{bladder_expr,bladder_missing_expr}.tsv.gz and
# bladder_samples.tsv; writes tests/reference/decide/*. Deterministic (no random numbers).
# Calls are written as -1/0/1 (NA where limma gives NA).

suppressPackageStartupMessages(library(limma))

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "decide")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path(ref_dir, "reference_writers.R"))

cat(R.version.string, "\n")
cat("limma", as.character(packageVersion("limma")), "\n")

warn_log <- data.frame(case = character(0), warning = character(0), stringsAsFactors = FALSE)

read_matrix <- function(name) {
  table <- read.delim(file.path(in_dir, name), check.names = FALSE, stringsAsFactors = FALSE)
  m <- as.matrix(table[, -1])
  rownames(m) <- table$feature
  m
}
y <- read_matrix("bladder_expr.tsv.gz")
ym <- read_matrix("bladder_missing_expr.tsv.gz")
samples <- read.delim(file.path(in_dir, "bladder_samples.tsv"), stringsAsFactors = FALSE)
cancer <- factor(samples$cancer, levels = c("Normal", "Biopsy", "Cancer"))
batch <- factor(samples$batch)
B <- model.matrix(~ 0 + cancer + batch)
colnames(B)[1:3] <- c("Normal", "Biopsy", "Cancer")
cm <- makeContrasts(CvB = Cancer - Biopsy, CvN = Cancer - Normal, BvN = Biopsy - Normal,
                    levels = B)
# Four contrasts, two of them sharing direction, so nestedF has more steps to take.
cm4 <- makeContrasts(CvB = Cancer - Biopsy, CvN = Cancer - Normal, BvN = Biopsy - Normal,
                     b2v1 = batch2, levels = B)

fits <- list(
  contrasts = eBayes(contrasts.fit(lmFit(y, B), cm)),
  contrasts_robust = eBayes(contrasts.fit(lmFit(y, B), cm), robust = TRUE),
  contrasts4 = eBayes(contrasts.fit(lmFit(y, B), cm4)),
  # One contrast: classifyTestsF falls back to a t test at the scaled level.
  contrast1 = eBayes(contrasts.fit(lmFit(y, B), cm[, "CvB", drop = FALSE])),
  # lmFit warns about partial NA coefficients (rows 2-4); F is NA for rows 1, 3, 4.
  missing_contrasts = suppressWarnings(eBayes(contrasts.fit(lmFit(ym, B), cm)))
)

settings <- list(
  list(label = "separate_BH", method = "separate", adjust = "BH", p = 0.05, lfc = 0),
  list(label = "global_BH", method = "global", adjust = "BH", p = 0.05, lfc = 0),
  list(label = "hierarchical_BH", method = "hierarchical", adjust = "BH", p = 0.05, lfc = 0),
  list(label = "hierarchical_holm", method = "hierarchical", adjust = "holm", p = 0.05, lfc = 0),
  list(label = "hierarchical_BY_0.1", method = "hierarchical", adjust = "BY", p = 0.1, lfc = 0),
  list(label = "hierarchical_bonferroni", method = "hierarchical", adjust = "bonferroni",
       p = 0.05, lfc = 0),
  list(label = "hierarchical_none_0.001", method = "hierarchical", adjust = "none",
       p = 0.001, lfc = 0),
  list(label = "nestedF_BH", method = "nestedF", adjust = "BH", p = 0.05, lfc = 0),
  list(label = "nestedF_holm", method = "nestedF", adjust = "holm", p = 0.05, lfc = 0),
  list(label = "nestedF_BY_0.1", method = "nestedF", adjust = "BY", p = 0.1, lfc = 0),
  list(label = "nestedF_none_0.001", method = "nestedF", adjust = "none", p = 0.001, lfc = 0),
  list(label = "nestedF_BH_lfc1", method = "nestedF", adjust = "BH", p = 0.05, lfc = 1),
  list(label = "hierarchical_BH_lfc1", method = "hierarchical", adjust = "BH", p = 0.05, lfc = 1)
)

summary_rows <- data.frame(case = character(0), setting = character(0), n_features = integer(0),
                           n_up = integer(0), n_down = integer(0), n_na = integer(0),
                           stringsAsFactors = FALSE)
add_summary <- function(case, label, calls) {
  summary_rows[nrow(summary_rows) + 1, ] <<- list(case, label, nrow(calls),
                                                  sum(calls == 1, na.rm = TRUE),
                                                  sum(calls == -1, na.rm = TRUE),
                                                  sum(is.na(calls)))
}

for (case in names(fits)) {
  eb <- fits[[case]]
  ok <- !is.na(eb$F.p.value)
  if (!all(ok)) {
    # hierarchical and nestedF stop on NA F p-values; those settings are run on the features
    # with an F p-value only (manylm calls the others 0 and leaves them out of the family).
    write_tsv(data.frame(feature = rownames(eb)[!ok], stringsAsFactors = FALSE),
              file.path(out_dir, paste0(case, ".na_f.tsv")))
  }
  for (s in settings) {
    run_case(paste(case, s$label), {
      object <- if (s$method %in% c("hierarchical", "nestedF")) eb[ok, ] else eb
      d <- decideTests(object, method = s$method, adjust.method = s$adjust,
                       p.value = s$p, lfc = s$lfc)
      calls <- unclass(d)
      write_tsv(mat_df(calls, "feature"),
                file.path(out_dir, paste0(case, ".", s$label, ".tsv.gz")))
      add_summary(case, s$label, calls)
    })
  }
}

write_tsv(summary_rows, file.path(out_dir, "summary.tsv"))
write_tsv(warn_log, file.path(out_dir, "warnings.tsv"))
write_tsv(data.frame(name = c("R", "limma"),
                     value = c(R.version.string, as.character(packageVersion("limma"))),
                     stringsAsFactors = FALSE),
          file.path(out_dir, "versions.tsv"))
print(summary_rows)
cat("done\n")
