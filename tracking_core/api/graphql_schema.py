"""The GraphQL schema MLflow's web UI queries (type and field names are that UI's contract).

Written as SDL for graphql-core. Field values come from the REST handlers' JSON (camelCased by
graphql_api); the `Extension` types add what the UI asks for next to a run.
"""

SDL = '''
# MLflow's UI names the component that sent a query; accepted and ignored.
directive @component(name: String!) on QUERY | MUTATION

scalar LongString

type Query {
  mlflowGetExperiment(input: MlflowGetExperimentInput): MlflowGetExperimentResponse
  mlflowGetMetricHistoryBulkInterval(
    input: MlflowGetMetricHistoryBulkIntervalInput
  ): MlflowGetMetricHistoryBulkIntervalResponse
  mlflowGetRun(input: MlflowGetRunInput): MlflowGetRunResponse
  mlflowListArtifacts(input: MlflowListArtifactsInput): MlflowListArtifactsResponse
  mlflowSearchModelVersions(input: MlflowSearchModelVersionsInput): MlflowSearchModelVersionsResponse
  mlflowSearchRuns(input: MlflowSearchRunsInput): MlflowSearchRunsResponse
  test(inputString: String): Test
}

type Mutation {
  mlflowSearchDatasets(input: MlflowSearchDatasetsInput): MlflowSearchDatasetsResponse
  mlflowSearchRuns(input: MlflowSearchRunsInput): MlflowSearchRunsResponse
  testMutation(inputString: String): TestMutation
}

type Test { output: String }
type TestMutation { output: String }

type ApiError { code: String, message: String, helpUrl: String, traceId: String, errorDetails: [ErrorDetail] }
type ErrorDetail { field: String, message: String }

input MlflowGetExperimentInput { experimentId: String }
type MlflowGetExperimentResponse { experiment: MlflowExperiment, apiError: ApiError }
type MlflowExperiment {
  experimentId: String, name: String, artifactLocation: String, lifecycleStage: String,
  lastUpdateTime: LongString, creationTime: LongString, tags: [MlflowExperimentTag!], workspace: String,
  effectiveTraceArchivalRetention: String
}
type MlflowExperimentTag { key: String, value: String }

input MlflowGetMetricHistoryBulkIntervalInput {
  runIds: [String], metricKey: String, startStep: Int, endStep: Int, maxResults: Int
}
type MlflowGetMetricHistoryBulkIntervalResponse { metrics: [MlflowMetricWithRunId!], apiError: ApiError }
type MlflowMetricWithRunId { key: String, value: Float, timestamp: LongString, step: LongString, runId: String }

input MlflowGetRunInput { runId: String, runUuid: String }
type MlflowGetRunResponse { run: MlflowRunExtension, apiError: ApiError }
type MlflowRunExtension {
  info: MlflowRunInfo, data: MlflowRunData, inputs: MlflowRunInputs, outputs: MlflowRunOutputs,
  experiment: MlflowExperiment, modelVersions: [MlflowModelVersion!]
}
type MlflowRunInfo {
  runId: String, runUuid: String, runName: String, experimentId: String, userId: String,
  status: MlflowRunStatus, startTime: LongString, endTime: LongString, artifactUri: String, lifecycleStage: String
}
enum MlflowRunStatus { RUNNING SCHEDULED FINISHED FAILED KILLED }
type MlflowRunData { metrics: [MlflowMetricExtension!], params: [MlflowParam!], tags: [MlflowRunTag!] }
type MlflowMetricExtension {
  key: String, value: Float, timestamp: LongString, step: LongString, datasetName: String, datasetDigest: String,
  modelId: String, runId: String
}
type MlflowParam { key: String, value: String }
type MlflowRunTag { key: String, value: String }
type MlflowRunInputs { datasetInputs: [MlflowDatasetInput!], modelInputs: [MlflowModelInput!] }
type MlflowDatasetInput { tags: [MlflowInputTag!], dataset: MlflowDataset }
type MlflowInputTag { key: String, value: String }
type MlflowDataset { name: String, digest: String, sourceType: String, source: String, schema: String, profile: String }
type MlflowModelInput { modelId: String }
type MlflowRunOutputs { modelOutputs: [MlflowModelOutput!] }
type MlflowModelOutput { modelId: String, step: LongString }

type MlflowModelVersion {
  name: String, version: String, creationTimestamp: LongString, lastUpdatedTimestamp: LongString, userId: String,
  currentStage: String, description: String, source: String, runId: String, status: MlflowModelVersionStatus,
  statusMessage: String, tags: [MlflowModelVersionTag!], runLink: String, aliases: [String], modelId: String,
  modelParams: [MlflowModelParam!], modelMetrics: [MlflowModelMetric!],
  deploymentJobState: MlflowModelVersionDeploymentJobState
}
type MlflowModelParam { name: String, value: String }
type MlflowModelMetric {
  key: String, value: Float, timestamp: LongString, step: LongString, datasetName: String, datasetDigest: String,
  modelId: String, runId: String
}
type MlflowModelVersionDeploymentJobState {
  jobId: String, runId: String, jobState: MlflowDeploymentJobConnectionState,
  runState: MlflowModelVersionDeploymentJobStateDeploymentJobRunState, currentTaskName: String
}
enum MlflowDeploymentJobConnectionState {
  DEPLOYMENT_JOB_CONNECTION_STATE_UNSPECIFIED NOT_SET_UP CONNECTED NOT_FOUND REQUIRED_PARAMETERS_CHANGED
}
enum MlflowModelVersionDeploymentJobStateDeploymentJobRunState {
  DEPLOYMENT_JOB_RUN_STATE_UNSPECIFIED NO_VALID_DEPLOYMENT_JOB_FOUND RUNNING SUCCEEDED FAILED PENDING APPROVAL
}
enum MlflowModelVersionStatus { PENDING_REGISTRATION FAILED_REGISTRATION READY }
type MlflowModelVersionTag { key: String, value: String }

input MlflowListArtifactsInput { runId: String, runUuid: String, path: String, pageToken: String }
type MlflowListArtifactsResponse {
  rootUri: String, files: [MlflowFileInfo!], nextPageToken: String, apiError: ApiError
}
type MlflowFileInfo { path: String, isDir: Boolean, fileSize: LongString }

input MlflowSearchModelVersionsInput { filter: String, maxResults: LongString, orderBy: [String], pageToken: String }
type MlflowSearchModelVersionsResponse {
  modelVersions: [MlflowModelVersion!], nextPageToken: String, apiError: ApiError
}

enum MlflowViewType { ACTIVE_ONLY DELETED_ONLY ALL }
input MlflowSearchRunsInput {
  experimentIds: [String], filter: String, runViewType: MlflowViewType = null, maxResults: Int, orderBy: [String],
  pageToken: String
}
type MlflowSearchRunsResponse { runs: [MlflowRunExtension!], nextPageToken: String, apiError: ApiError }

input MlflowSearchDatasetsInput { experimentIds: [String] }
type MlflowSearchDatasetsResponse { datasetSummaries: [MlflowDatasetSummary!], apiError: ApiError }
type MlflowDatasetSummary { experimentId: String, name: String, digest: String, context: String }
'''
